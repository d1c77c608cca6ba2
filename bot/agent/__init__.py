"""The reply agent: the tool loop, the context it builds for the model, rolling summaries, recalled
notes and per-thread state.
"""
