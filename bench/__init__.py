"""denyproxy side by side with NGINX, a plain aiohttp pass-through, Lua and mitmproxy.

Run through `bench/run` (which installs what is missing); `bench/run --help` lists the flags.
Every server listens on a free port on 127.0.0.1, is measured in turn with `wrk`, and is
stopped before the next one starts (and all of them on Ctrl-C or an error).

Contenders
  1 direct          wrk → upstream NGINX (the ceiling)
  2 nginx           NGINX proxy_pass with upstream keepalive (the C pass-through anchor)
  3 aiohttp-pass    bench/passthrough.py: one ClientSession, read body, return it
  4 dp-exempt       denyproxy --exempt-paths /api (forwarding only, no filtering)
  5 dp-memory       denyproxy filtering, in-memory store (100k filler rules per tenant)
  6 dp-redis        denyproxy filtering, Redis store (100k filler rules per tenant)
  7 nginx-lua       NGINX + lua-nginx-module body filter (lua-cjson), same filtering
  8 mitmproxy       mitmdump --mode reverse + bench/mitm_filter.py, same filtering

Modules: options (command line), data (payloads and rules), procs (servers and their
supervisor), nginx (configs), contenders (one class per kind), proctree (/proc accounting),
wrk (load generator), measure (one cell), pyspy (profiles), kafka_run (bench/kafka_bench.py
runner), session (the run), results (rows and JSON), table/report/plot (output), compare.
"""
