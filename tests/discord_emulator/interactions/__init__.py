"""Interactions: INTERACTION_CREATE built from a synced command, a clicked button or a
submitted modal, and the bot's answers.

``model`` holds Discord's interaction numbers and ``InteractionHandle`` (one interaction, its
token and deadline, and what the bot did with it); ``service.InteractionService`` combines
``create`` (INTERACTION_CREATE out), ``callbacks`` (the first answer) and ``webhooks``
(``@original`` and follow-up messages), with Discord's rules on each.
"""
