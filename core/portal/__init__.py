"""The web portal as a customer door of a handoff (core.handoff).

events.py  a conversation's events (agents' replies, the end notice) on the state backend,
           followed by the asker's SSE stream (GET /conversations/{id}/events)
door.py    /ask in front of the bot while a conversation is (or asks to be) with a person,
           and the CustomerChannel that puts agents' replies on the conversation's events
"""
