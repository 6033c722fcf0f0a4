"""How a backend talks to its provider over HTTP: the upstream client and its deadlines, retry, provider errors by status, failures in plain words, Anthropic events in wire form."""
