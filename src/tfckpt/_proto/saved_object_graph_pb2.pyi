from tfckpt._proto import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Opaque(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SavedBareConcreteFunction(_message.Message):
    __slots__ = ["allowed_positional_arguments", "argument_keywords", "concrete_function_name"]
    ALLOWED_POSITIONAL_ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    ARGUMENT_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    CONCRETE_FUNCTION_NAME_FIELD_NUMBER: _ClassVar[int]
    allowed_positional_arguments: int
    argument_keywords: _containers.RepeatedScalarFieldContainer[str]
    concrete_function_name: str
    def __init__(self, concrete_function_name: _Optional[str] = ..., argument_keywords: _Optional[_Iterable[str]] = ..., allowed_positional_arguments: _Optional[int] = ...) -> None: ...

class SavedConcreteFunction(_message.Message):
    __slots__ = ["bound_inputs", "canonicalized_input_signature", "output_signature"]
    BOUND_INPUTS_FIELD_NUMBER: _ClassVar[int]
    CANONICALIZED_INPUT_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    bound_inputs: _containers.RepeatedScalarFieldContainer[int]
    canonicalized_input_signature: _struct_pb2.StructuredValue
    output_signature: _struct_pb2.StructuredValue
    def __init__(self, bound_inputs: _Optional[_Iterable[int]] = ..., canonicalized_input_signature: _Optional[_Union[_struct_pb2.StructuredValue, _Mapping]] = ..., output_signature: _Optional[_Union[_struct_pb2.StructuredValue, _Mapping]] = ...) -> None: ...

class SavedFunction(_message.Message):
    __slots__ = ["concrete_functions"]
    CONCRETE_FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    concrete_functions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, concrete_functions: _Optional[_Iterable[str]] = ...) -> None: ...

class SavedObject(_message.Message):
    __slots__ = ["asset", "bare_concrete_function", "captured_tensor", "children", "constant", "function", "resource", "user_object", "variable"]
    class ObjectReference(_message.Message):
        __slots__ = ["local_name", "node_id"]
        LOCAL_NAME_FIELD_NUMBER: _ClassVar[int]
        NODE_ID_FIELD_NUMBER: _ClassVar[int]
        local_name: str
        node_id: int
        def __init__(self, node_id: _Optional[int] = ..., local_name: _Optional[str] = ...) -> None: ...
    ASSET_FIELD_NUMBER: _ClassVar[int]
    BARE_CONCRETE_FUNCTION_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_TENSOR_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    CONSTANT_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    USER_OBJECT_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_FIELD_NUMBER: _ClassVar[int]
    asset: Opaque
    bare_concrete_function: SavedBareConcreteFunction
    captured_tensor: Opaque
    children: _containers.RepeatedCompositeFieldContainer[SavedObject.ObjectReference]
    constant: Opaque
    function: SavedFunction
    resource: Opaque
    user_object: Opaque
    variable: Opaque
    def __init__(self, children: _Optional[_Iterable[_Union[SavedObject.ObjectReference, _Mapping]]] = ..., user_object: _Optional[_Union[Opaque, _Mapping]] = ..., asset: _Optional[_Union[Opaque, _Mapping]] = ..., function: _Optional[_Union[SavedFunction, _Mapping]] = ..., variable: _Optional[_Union[Opaque, _Mapping]] = ..., bare_concrete_function: _Optional[_Union[SavedBareConcreteFunction, _Mapping]] = ..., constant: _Optional[_Union[Opaque, _Mapping]] = ..., resource: _Optional[_Union[Opaque, _Mapping]] = ..., captured_tensor: _Optional[_Union[Opaque, _Mapping]] = ...) -> None: ...

class SavedObjectGraph(_message.Message):
    __slots__ = ["concrete_functions", "nodes"]
    class ConcreteFunctionsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: SavedConcreteFunction
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[SavedConcreteFunction, _Mapping]] = ...) -> None: ...
    CONCRETE_FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    concrete_functions: _containers.MessageMap[str, SavedConcreteFunction]
    nodes: _containers.RepeatedCompositeFieldContainer[SavedObject]
    def __init__(self, nodes: _Optional[_Iterable[_Union[SavedObject, _Mapping]]] = ..., concrete_functions: _Optional[_Mapping[str, SavedConcreteFunction]] = ...) -> None: ...
