"""Running the built app under an ASGI server, with the bounds `server.limits` sets.

`run_uvicorn` is what `lynkr serve` calls; `bounded_protocol` is the HTTP/1.1
protocol it runs, uvicorn's httptools protocol with the limits uvicorn lacks
(a connection cap, a request-head size cap and a head-read deadline).
"""

from lynkr.serving.protocol import HeadLimits, bounded_protocol
from lynkr.serving.run import run_uvicorn

__all__ = ["HeadLimits", "bounded_protocol", "run_uvicorn"]
