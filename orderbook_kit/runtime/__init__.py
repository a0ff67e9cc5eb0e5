"""How a service runs: its command line, its consume loop, its lifecycle, and starting one as a
process.

- :mod:`.command_line`: one ``error:`` line and exit code 2 for a bad flag or variable;
- :mod:`.service`: the shared flags, Ctrl-C, serving metrics, running a consumer service;
- :mod:`.group_loop`: the consume loop by composition - one loop, a stage's batch handler, and an
  offset keeper (Kafka's commits, or the service's own records);
- :mod:`.polling`: polling through outages, and when a run ends;
- :mod:`.launcher`: ``start_service("store", settings)``, a service as a real process.

Imports: settings, errors, paths, market, kafka, database and monitoring - never a stage.
"""
