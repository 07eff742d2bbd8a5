#!/usr/bin/env python3
"""bench_flower.py: the Flower half of scripts/bench/bench_federation.sh.

Flower 1.42 through its legacy (deprecated, still shipped) API:
flwr.server.start_server + flwr.client.start_client over gRPC with TLS
(server certificate from the bench's own openssl CA; Flower has no client
certificates: its TLS is server-side only).

  bench_flower.py server --port P --clients K --params N --rounds R --certs DIR
  bench_flower.py client --port P --params N --certs DIR

The model is one float32 array of N values, (i % 1000) * 1e-3, the same the
fedpath side sends. FedAvg with fraction_fit 1 and min_fit/min_available
clients K; no evaluation. Clients return what they received unchanged
(num_examples 1). The server prints one line per round:
  round R start_ms T0 end_ms T1
T0: configure_fit has sampled the K clients (every client is connected) and
the instructions are about to go out; T1: aggregate_fit has returned (the
round's new global model exists). Times are epoch milliseconds.
"""
import argparse
import os
import resource
import sys
import time

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # no network here; and not part of a round

import numpy as np  # noqa: E402
import flwr  # noqa: E402
from flwr.client import NumPyClient, start_client  # noqa: E402
from flwr.common import ndarrays_to_parameters  # noqa: E402
from flwr.server import ServerConfig, start_server  # noqa: E402
from flwr.server.strategy import FedAvg  # noqa: E402


def model(n):
    return (np.arange(n, dtype=np.int64) % 1000).astype(np.float32) * np.float32(1e-3)


def now_ms():
    return time.time() * 1e3


class TimedFedAvg(FedAvg):
    def configure_fit(self, server_round, parameters, client_manager):
        out = super().configure_fit(server_round, parameters, client_manager)
        self._start = now_ms()
        return out

    def aggregate_fit(self, server_round, results, failures):
        out = super().aggregate_fit(server_round, results, failures)
        print(f"round {server_round} start_ms {self._start:.3f} end_ms {now_ms():.3f} "
              f"results {len(results)} failures {len(failures)}", flush=True)
        return out


class EchoClient(NumPyClient):
    def fit(self, parameters, config):
        return parameters, 1, {}

    def evaluate(self, parameters, config):
        return 0.0, 1, {}


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--params", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--certs", required=True)
    a = ap.parse_args()
    if a.role == "server":
        k = a.clients
        strategy = TimedFedAvg(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=k,
                               min_evaluate_clients=0, min_available_clients=k,
                               initial_parameters=ndarrays_to_parameters([model(a.params)]))
        start_server(server_address=f"127.0.0.1:{a.port}", config=ServerConfig(num_rounds=a.rounds),
                     strategy=strategy,
                     certificates=(read(f"{a.certs}/ca.crt"), read(f"{a.certs}/server.crt"),
                                   read(f"{a.certs}/server.key")))
    else:
        start_client(server_address=f"127.0.0.1:{a.port}", client=EchoClient().to_client(),
                     root_certificates=read(f"{a.certs}/ca.crt"))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{a.role} flwr {flwr.__version__} peak_rss_kb {ru.ru_maxrss} cpu_s {ru.ru_utime + ru.ru_stime:.3f}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
