"""Package data of the memory layer (tokenizer files of the bundled embedding model)."""
