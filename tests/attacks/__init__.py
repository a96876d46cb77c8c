"""The warrant attack suite: a seeded generator of attacks and legitimate calls
(:mod:`.generator`) and the test that runs it; ``benchmarks/attacks.py`` reports on it."""
