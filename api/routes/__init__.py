"""The API's routes, one module per group of operations; ``api.routertable.include_routes``
includes each module's ``router``, and every module takes its shared dependencies from
``api.deps``."""
