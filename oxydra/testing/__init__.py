"""Testing aids shipped with the package: `FakeLLM`, a loopback fake LLM server speaking the
four provider wire formats (runtime, gateway, end-to-end tests and benchmarks), and
`MockProvider`, an in-process scripted `Provider`.

Product code never imports this package (tests/test_layering.py puts it above the app).
"""

from oxydra.testing.fake_llm import Call, Fail, FakeLLM, Reply, decode_script
from oxydra.testing.mock_provider import MockProvider, reply

__all__ = ["Call", "Fail", "FakeLLM", "MockProvider", "Reply", "decode_script", "reply"]
