"""Loaded by tests that prove the runtime path never imports torch: any attempt fails loudly."""
import sys


class _BlockTorch:
    blocked = ("torch", "transformers", "tensorflow")

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"{name} is blocked in this test: the inference path must not import it")
        return None


sys.meta_path.insert(0, _BlockTorch())
