"""pymafka (typosquat of pykafka)."""
