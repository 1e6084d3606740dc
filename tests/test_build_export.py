"""ONNX Runtime logits vs the checkpoint's own PyTorch logits (fp32, max abs diff < 1e-4)."""
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the export extra (torch) is needed for parity tests")
transformers = pytest.importorskip("transformers")

from beam_tensorrt.backends.onnxruntime import OnnxRuntimeSession  # noqa: E402
from beam_tensorrt.models import sentiment_minilm  # noqa: E402
from beam_tensorrt.tokenization import TextTokenizer  # noqa: E402

TEXTS = ["the film is a delight", "dull, dull, dull.", "", "naïve café 🙂 日本語",
         "a much longer sentence that goes on and on, " * 6]


def _tiny_checkpoint(kind: str, path, vocab_dir):
    """A randomly initialised checkpoint (no hub): BERT/DistilBERT reuse the MiniLM WordPiece vocab,
    RoBERTa gets a byte-level BPE tokenizer trained here on a few sentences."""
    torch.manual_seed(0)
    labels = {"id2label": {0: "NEG", 1: "NEU", 2: "POS"}, "label2id": {"NEG": 0, "NEU": 1, "POS": 2}}
    if kind == "roberta":
        from tokenizers import ByteLevelBPETokenizer

        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(TEXTS * 20 + ["hello world", "some more words"], vocab_size=400,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        tok = transformers.RobertaTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>",
                                                pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")
        from tokenizers.processors import RobertaProcessing

        tok.backend_tokenizer.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
        config = transformers.RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                            num_attention_heads=4, intermediate_size=64,
                                            max_position_embeddings=130, pad_token_id=1, **labels)
        model = transformers.RobertaForSequenceClassification(config)
    else:
        tok = transformers.BertTokenizerFast.from_pretrained(str(vocab_dir), local_files_only=True)
        if kind == "bert":
            config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                             intermediate_size=64, max_position_embeddings=128, **labels)
            model = transformers.BertForSequenceClassification(config)
        else:
            config = transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                                                   max_position_embeddings=128, **labels)
            model = transformers.DistilBertForSequenceClassification(config)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return model.eval(), tok


# BERT through the command in a fresh interpreter, as users run it; the others through the function
# behind it, in this process (each interpreter pays seconds to import torch and transformers).
@pytest.mark.parametrize("kind", ["bert", "distilbert", "roberta"])
def test_export_cli_matches_pytorch(kind, tmp_path, capsys):
    ckpt, out = tmp_path / f"tiny-{kind}", tmp_path / "artifact"
    model, tok = _tiny_checkpoint(kind, ckpt, sentiment_minilm.MODEL.encoder_dir())
    if kind == "bert":
        proc = subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "export", str(ckpt), "--out", str(out)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        said = proc.stderr
    else:
        from beam_tensorrt.cli import main

        assert main(["export", str(ckpt), "--out", str(out)]) == 0
        said = capsys.readouterr().err
    assert "max abs diff" in said
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["labels"] == ["NEG", "NEU", "POS"]
    assert ("token_type_ids" in manifest["input_names"]) == (kind == "bert")

    from beam_tensorrt.artifact import ModelArtifact

    artifact = ModelArtifact.load(out, verify_checksum=True)
    batch = TextTokenizer(artifact.tokenizer_path, 64)(TEXTS)
    session = OnnxRuntimeSession(artifact)
    ours = session.run(batch.feeds(session.input_names))
    with torch.no_grad():
        theirs = model(**{n: torch.from_numpy(getattr(batch, n)) for n in session.input_names}).logits.numpy()
    assert ours.shape == (len(TEXTS), 3)
    assert np.abs(ours - theirs).max() < 1e-4
