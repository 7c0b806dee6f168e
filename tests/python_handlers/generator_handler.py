"""A generator runpod-python handler: yields the input text in pieces.
  {"text": s, "chunk": n}       yields s in pieces of n characters
  {"bytes": n, "chunk": m}      yields a deterministic n-character text in pieces of m
  {"fail_after": k}             raises after k pieces; {"error_after": k} yields {"error": ...}
"""

import runpod


def text_of(job_input):
    if "bytes" in job_input:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789é✓"
        n = int(job_input["bytes"])
        return "".join(alphabet[(i * 7 + i // 13) % len(alphabet)] for i in range(n))
    return str(job_input.get("text", ""))


def handler(job):
    job_input = job["input"]
    text = text_of(job_input)
    size = max(1, int(job_input.get("chunk", 4)))
    for count, start in enumerate(range(0, len(text), size)):
        if count == job_input.get("fail_after"):
            raise RuntimeError(f"failed after {count} pieces")
        if count == job_input.get("error_after"):
            yield {"error": f"gave up after {count} pieces"}
        yield text[start:start + size]


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
