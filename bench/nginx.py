"""NGINX configurations: the static upstream, the proxy_pass anchor and its Lua-filter twin."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.paths import BENCH
from tests.services import free_ports

LUA_MODULES = ("/usr/lib/nginx/modules/ndk_http_module.so",
               "/usr/lib/nginx/modules/ngx_http_lua_module.so")
LUA_CPATH = "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;/usr/lib/lua/5.1/?.so;;"
LOAD_LUA = "\n".join(f"load_module {m};" for m in LUA_MODULES)

CONF = """{modules}
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
master_process on;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    server_tokens off;
{http_extra}
{server_block}
}}
"""

UPSTREAM_BLOCK = """
    open_file_cache max=1000 inactive=60s;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {www};
        types {{ }}
        default_type application/json;
        location / {{ }}
    }}"""

PROXY_BLOCK = """
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;{location_extra}
        }}
    }}"""

LUA_HTTP = f"""
    lua_package_path "{BENCH}/?.lua;;";
    lua_package_cpath "{LUA_CPATH}";
    init_by_lua_block {{{{
        denyfilter = require("lua_filter")
        denyfilter.load("{{deny_file}}")
    }}}}"""

LUA_LOCATION = """
            header_filter_by_lua_block { denyfilter.header() }
            body_filter_by_lua_block { denyfilter.body() }"""

LUA_TEST = f"""{LOAD_LUA}
pid {{prefix}}/nginx.pid;
events {{{{ }}}}
http {{{{
    lua_package_cpath "{LUA_CPATH}";
    init_by_lua_block {{{{ require "cjson" }}}}
}}}}
"""


def write_conf(work: Path, name: str, workers: int, server_block: str, http_extra: str = "",
               modules: str = "") -> Path:
    prefix = work / f"nginx-{name}"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(CONF.format(modules=modules, workers=workers, prefix=prefix,
                                http_extra=http_extra, server_block=server_block))
    return conf


def argv(conf: Path) -> list[str]:
    return ["nginx", "-c", str(conf), "-p", str(conf.parent), "-e", str(conf.parent / "error.log")]


def upstream_conf(work: Path, www: Path, workers: int) -> tuple[Path, int]:
    """The static upstream serving the task results; (conf, port)."""
    (port,) = free_ports(1)
    block = UPSTREAM_BLOCK.format(port=port, www=www)
    return write_conf(work, "upstream", workers, block), port


def proxy_conf(work: Path, name: str, upstream_port: int, workers: int,
               deny_file: Path | None) -> tuple[Path, int]:
    """proxy_pass to the upstream (keepalive 64), with the Lua body filter if `deny_file`."""
    (port,) = free_ports(1)
    http_extra = f"upstream up {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}"
    modules = location_extra = ""
    if deny_file is not None:
        modules, location_extra = LOAD_LUA, LUA_LOCATION
        http_extra += LUA_HTTP.format(deny_file=deny_file)
    block = PROXY_BLOCK.format(port=port, location_extra=location_extra)
    return write_conf(work, f"{name}-{workers}", workers, block, http_extra, modules), port


def lua_available(work: Path) -> tuple[bool, str]:
    """Can this NGINX load the Debian lua module and lua-cjson? (`nginx -t` on a tiny conf)."""
    if not all(Path(m).exists() for m in LUA_MODULES):
        return False, "libnginx-mod-http-lua is not installed"
    prefix = work / "nginx-luatest"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(LUA_TEST.format(prefix=prefix))
    res = subprocess.run(["nginx", "-t", *argv(conf)[1:]], check=False, capture_output=True,
                         text=True)
    if res.returncode != 0:
        return False, (res.stderr or res.stdout).strip().splitlines()[-1]
    return True, ""
