"""How a service runs: its command line, its consume loop, its lifecycle, and starting one as a
process.

- :mod:`.command_line`: one ``error:`` line and exit code 2 for a bad flag or variable;
- :mod:`.service`: the shared flags, Ctrl-C, serving metrics, running a consumer service;
- :mod:`.polling`, :mod:`.resuming`: the consume loop through outages, and resuming from the
  service's own records;
- :mod:`.lifecycle`: ``connect``/``close`` and ``with``;
- :mod:`.launcher`: ``start_service("store", settings)``, a service as a real process.

Imports: settings, errors, paths, market, kafka, database and monitoring - never a stage.
"""
