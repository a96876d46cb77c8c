"""The attack suites: a seeded generator of attacks on warrants and legitimate calls
(:mod:`.generator`, run by ``test_attacks.py``), and a seeded generator of tamperings
with sealed journals made by real runs, and of legitimate journals (:mod:`.tamper`, run
by ``test_tamper.py``); ``benchmarks/attacks.py`` reports on both."""
