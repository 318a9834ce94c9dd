"""Everything that writes the index: sources, chunking, embedding, the Milvus store, runs."""
