"""Testing aids shipped with the package: `oxydra.testing.fake_llm`, a loopback fake LLM server
speaking the four provider wire formats, for runtime, gateway, end-to-end tests and benchmarks.
"""
