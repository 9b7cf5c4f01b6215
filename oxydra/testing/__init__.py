"""Testing aids shipped with the package, imported by module: `oxydra.testing.fake_llm`
(a loopback fake LLM server speaking the four provider wire formats, also run as
`python -m oxydra.testing.fake_llm`, so this package must not import it),
`oxydra.testing.mock_provider` (an in-process scripted `Provider`) and
`oxydra.testing.fake_docker`.

Product code never imports this package (tests/test_layering.py puts it above the app).
"""

__all__: list[str] = []
