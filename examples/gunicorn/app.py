"""A small WSGI app keeping per-user session state in hzshm, for gunicorn.

    HZSHM_CACHE=sessions gunicorn -w 4 --preload -b 127.0.0.1:8000 app:app

The cache is opened once, at import: with --preload that happens in the
gunicorn master, and every worker forked from it uses the same Cache object
(hzshm re-attaches in the child by itself). All workers of the host share one
copy of each session, coherent with the cluster.

    GET    /s/<sid>/<key>   200 and the value, or 404
    PUT    /s/<sid>/<key>   the request body becomes the value (204)
    DELETE /s/<sid>/<key>   204
    DELETE /s/<sid>         the whole session, cluster-wide (204)
    GET    /whoami          {"pid": worker pid, "opened_in": pid that opened the cache}

<sid> and <key> are UTF-8, percent-encoded in the URL (/s/caf%C3%A9/k is the
session "café", the IMap every other Hazelcast client sees by that name): a
path that is not UTF-8 is a 400. A cache that fails closed or an agent that
does not answer is a 503: no possibly stale value is served. Every response
carries X-Worker-Pid.
"""
import json
import os

import hzshm

CACHE = hzshm.Cache(os.environ.get("HZSHM_CACHE", "sessions"))
OPENED_IN = os.getpid()

_STATUS = {200: "200 OK", 204: "204 No Content", 400: "400 Bad Request", 404: "404 Not Found",
           405: "405 Method Not Allowed", 415: "415 Unsupported Media Type", 503: "503 Service Unavailable"}


def _route(method, parts, environ):
    if parts == ["whoami"] and method == "GET":
        return 200, json.dumps({"pid": os.getpid(), "opened_in": OPENED_IN}).encode()
    if len(parts) not in (2, 3) or parts[0] != "s":
        return 404, b"no such route\n"
    with CACHE.session(parts[1]) as s:
        if len(parts) == 2:
            if method != "DELETE":
                return 405, b"DELETE only\n"
            s.destroy()
            return 204, b""
        key = parts[2]
        if method == "GET":
            v = s.get(key)
            if v is None:
                return 404, b""
            return 200, v.encode() if isinstance(v, str) else v  # a Hazelcast String comes back as str
        if method == "PUT":
            try:
                n = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return 400, b"bad Content-Length\n"
            s.set(key, environ["wsgi.input"].read(n))
            return 204, b""
        if method == "DELETE":
            s.delete(key)
            return 204, b""
    return 405, b"GET, PUT or DELETE\n"


def _path(environ):
    """The request path as text: WSGI gives PATH_INFO (percent-decoded) as the
    latin-1 decoding of its bytes (PEP 3333), and ids and keys are UTF-8."""
    return environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")


def app(environ, start_response):
    try:
        parts = [p for p in _path(environ).split("/") if p]
        status, body = _route(environ["REQUEST_METHOD"], parts, environ)
    except UnicodeDecodeError:
        status, body = 400, b"the path is not UTF-8\n"
    except (hzshm.FailClosed, hzshm.AgentUnavailable, hzshm.Timeout) as e:  # never serve a value that may be stale
        status, body = 503, f"{e.name}\n".encode()
    except hzshm.UnsupportedType as e:
        status, body = 415, f"type id {e.type_id}\n".encode()
    except (hzshm.InvalidArgument, hzshm.TooBig) as e:
        status, body = 400, f"{e.name}\n".encode()
    start_response(_STATUS[status], [("Content-Length", str(len(body))), ("X-Worker-Pid", str(os.getpid()))])
    return [body]
