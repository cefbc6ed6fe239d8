"""The floor for benchmarks/serving_load.py: a bare FastAPI app whose POST /predict accepts the
same body as the model server (a list of instances, parsed and validated as JSON objects)
and answers a constant. What it serves per second is the framework's ceiling on this machine.

    python benchmarks/floor_app.py --port 8001 [--workers 2]

uvicorn's defaults, as the model server's `uvicorn.run(app, host=..., port=...)`. For more
than one worker the listening socket is bound here: uvicorn's own leaves the protocol number
at 0, so asyncio does not set TCP_NODELAY on accepted connections and every keep-alive
request waits ~40 ms for a delayed ACK (github.com/Kludex/uvicorn/issues/3149). A floor
with that stall would hide it in the server it is compared with.
"""

import argparse
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from uvicorn.supervisors import Multiprocess


class Body(BaseModel):
    instances: list[dict[str, Any]]


app = FastAPI()


@app.post("/predict")
def predict(body: Body) -> dict:
    return {"predictions": [0]}


def tcp_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.workers == 1:
        uvicorn.run(app, host=args.host, port=args.port)
    else:
        config = uvicorn.Config(
            "floor_app:app", host=args.host, port=args.port, workers=args.workers
        )
        Multiprocess(config, sockets=[tcp_socket(args.host, args.port)]).run()
