"""Serving must work where torch is not installed."""

import subprocess
import sys
import textwrap


def test_serve_imports_and_predicts_without_torch(sage_bundle):
    script = textwrap.dedent(f"""
        import sys
        class BlockTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith(("torch.", "torch_geometric")):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, BlockTorch())
        from hashembed.serve import Predictor
        from hashembed.app.cli import main
        out = Predictor({str(sage_bundle)!r}).predict([1, 2, 3])
        assert out.logits.shape == (3, 7), out.logits.shape
        assert main(["predict", {str(sage_bundle)!r}, "--nodes", "1,2"]) == 0
        assert "torch" not in sys.modules
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
