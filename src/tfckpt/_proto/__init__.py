"""Generated protobuf modules (see tools/gen_protos.py); private to tfckpt."""
