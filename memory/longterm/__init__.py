"""Long-term memory: distilling ended conversations into memory records, the batch queue and its
lease, the service, and forgetting a person.
"""
