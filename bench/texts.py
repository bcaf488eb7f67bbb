"""The report's fixed paragraphs (kept apart so report.py reads as structure)."""

CPU_LEGEND = (
    "CPU % = the contender's processes (all workers), from /proc utime+stime (100 % = one "
    "core); for #1 it is the upstream NGINX itself. CPU µs/req = that CPU time per request. "
    "RSS = peak (VmHWM) summed over the processes. aux CPU = upstream NGINX + Redis. other "
    "CPU = whole-machine busy time (/proc/stat) not accounted for by the contender, aux or "
    "wrk: processes outside the bench; ⚠ marks a cell where they took > 15 % of a core "
    "(figures disturbed). Ratios are to #2 (NGINX proxy_pass) with the same workers and "
    "connections.")

SUMMARY_INTRO = (
    "CPU time of the contender's processes per request at {conns} connections, and the "
    "request rate one core would sustain at that cost (1e6 / µs). Unlike req/s, this barely "
    "moves when other processes share the machine. #1's figure is the upstream NGINX's own "
    "cost.")

UNIQUE_INTRO = (
    "The other tables rotate over 16 results, so after the first pass every value hits "
    "rules.normalize's lru_caches; real enrichment traffic is mostly new contacts, which this "
    "cell shows.")

LISTS_INTRO = (
    "Issue #13: a fifth API key, with no rules of its own, has {count} named lists of "
    "{entries:,} entries assigned (written with the store's list writer: synthetic entries "
    "that match nothing, plus about 1 in 8 of the 8-contact results' values spread over the "
    "lists). wrk requests the 8-contact results with that key only; `small` is the same "
    "results over the 4 keys with key rules only. Each response's lookup reads the key, "
    "global and every assigned list scope in the one script call.")

HALF_INTRO = (
    "Unloaded = wrk with {c_low} connection(s). Half load = wrk with N connections (N scaled "
    "so each pauses ~10 ms), each pausing a random 0–2× pace between requests (Lua `delay()`) "
    "so the offered rate is about half the contender's own max req/s. wrk2 is not packaged in "
    "Debian: this is wrk's closed loop, so the p99 is *not* corrected for coordinated "
    "omission.")

FOOTER = (
    "Filtering semantics of #7 and #8 (hand-written for this bench): exact match of raw "
    "strings from a per-key table, no normalisation, no domain rules; a contact point object "
    "(`{\"phone_number\": x, \"line_type\": ...}`) holding a denied value is removed as "
    "denyproxy's strip policy does. #7's lua-cjson re-encodes empty arrays as `{}`.")
