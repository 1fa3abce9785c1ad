"""Lazy package exports (PEP 562): a package names what it exports and the module that
defines each, and imports that module on first use. Importing one light module of the
package (its config, say) then does not import TensorFlow, so the commands parse and
check their flags before loading it."""

import importlib


def lazy_exports(package, exports, namespace):
    """(__getattr__, __dir__) for `package` exporting {name: module} `exports`; a name
    once imported is stored in the package's `namespace` (its globals())."""

    def __getattr__(name):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
