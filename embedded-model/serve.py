"""Serves a GGUF model with llama.cpp's server (OpenAI-compatible HTTP API) through xllamacpp.

Started by the worker (src/providers/embedded-model.ts) on a port the system picks; prints
`listening <url>` once the model is loaded, then serves until it is stopped.

SIGINT ends it at once, as SIGTERM does: it has nothing to save, and Python's KeyboardInterrupt
would stop llama.cpp's server gracefully, holding the requests in flight for 30 s first.
"""

import argparse
import signal
import threading

import xllamacpp

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--threads", type=int, required=True)
parser.add_argument("--context", type=int, required=True)
parser.add_argument("--parallel", type=int, required=True)
args = parser.parse_args()
signal.signal(signal.SIGINT, signal.SIG_DFL)

params = xllamacpp.CommonParams()
params.model.path = args.model
params.port = 0
params.n_ctx = args.context
params.n_parallel = args.parallel
params.cpuparams.n_threads = args.threads
params.cpuparams_batch.n_threads = args.threads
server = xllamacpp.Server(params)
print(f"listening {server.listening_address}", flush=True)
threading.Event().wait()
