"""Package data of the memory layer (tokenizer files of the bundled embedding model)."""

__all__: list[str] = []
