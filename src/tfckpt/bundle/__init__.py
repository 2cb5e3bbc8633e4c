"""The tensor bundle format: entries, slices, payloads, the object graph, reader, writer, publisher."""
