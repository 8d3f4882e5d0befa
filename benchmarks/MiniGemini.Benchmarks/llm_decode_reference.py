"""PyTorch/transformers baseline for `MiniGemini.Benchmarks llm-decode` on a GPU: the same 7B-shaped random Llama
(hidden 4096, 32 layers, 32 heads, FFN 11008, vocab 32000) in bf16, SDPA attention, a 600-token prompt, 128 greedy
tokens with HF generate (dynamic cache). Prints prefill time and decode tokens/s the way the C# console does."""
import sys, time
import torch
from transformers import LlamaConfig, LlamaForCausalLM

prompt_len = int(sys.argv[1]) if len(sys.argv) > 1 else 600
new_tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 128
cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)
torch.manual_seed(0)
torch.set_default_dtype(torch.bfloat16)
with torch.device("cuda"):
    model = LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa").eval()
torch.set_default_dtype(torch.float32)
ids = torch.randint(0, cfg.vocab_size, (1, prompt_len), device="cuda")


@torch.inference_mode()
def run(n):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    model(input_ids=ids, use_cache=True)
    torch.cuda.synchronize()
    prefill = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
    torch.cuda.synchronize()
    return prefill, time.perf_counter() - t0


run(8)
rates = []
for r in range(3):
    prefill, total = run(new_tokens)
    rate = (new_tokens - 1) / (total - prefill)
    rates.append(rate)
    print(f"run {r + 1}: transformers {__import__('transformers').__version__}, torch {torch.__version__}: prefill {prefill * 1e3:.1f} ms; "
          f"{new_tokens} tokens in {total * 1e3:.0f} ms => {rate:.1f} tok/s after the prefill")
print(f"decode tokens/s (best of 3): {max(rates):.1f}")
