"""The demo web behind `webtext demo` and the end-to-end tests: generated news sites with
traps for every drop reason, a Pushshift-format dump that links to them, and a forward proxy
on 127.0.0.1 that serves them. Outside pipeline/: no stage imports it.

- web.py: `generate(out_dir, seed) -> DemoWeb` (pages, dump, expected counts per trap, an
  evaluation set with some lines planted in kept pages for `webtext overlap`) and
  `demo_config(...)`, the matching partial corpus config
- server.py: `serve(web)`, the forward proxy (a context manager yielding its URL)
- text.py, html.py: the article texts and page templates
"""

from demo.server import serve
from demo.web import DemoWeb, PageInfo, demo_config, generate

__all__ = ["DemoWeb", "PageInfo", "demo_config", "generate", "serve"]
