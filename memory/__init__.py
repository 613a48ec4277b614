"""Agent memory: short-term conversation and long-term semantic memory.

Nothing here yet: agent memory lands with the memory issue. Until then an
``agent`` node with ``config.memory`` is refused at load time with a message
that says so (see ``engine/nodes/agent.py``).
"""
