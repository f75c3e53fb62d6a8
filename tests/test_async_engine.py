"""AsyncEngine, the asyncio API over the continuous-batching engine: concurrent streams equal what
LLM.generate gives, closing a stream (or cancelling its task) cancels the request and frees its
blocks, and bad requests raise without disturbing the others."""
import asyncio

import pytest

from llmasos import LLM, AsyncEngine, InvalidArgumentError, SamplingParams

PROMPTS = ["The world is", "Once upon a time", "def fib(n):", "The capital of France is", "1, 2, 3,"]


@pytest.fixture(scope="module")
def llm(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf, n_ctx=512, threads=2) as m:
        yield m


async def text_of(engine, prompt, params):
    return "".join([d.text async for d in engine.generate(prompt, params)])


async def idle(engine, timeout=20.0):
    for _ in range(int(timeout / 0.05)):
        s = engine.stats()
        if s["running"] == 0 and s["waiting"] == 0 and s["blocks_used"] == 0:
            return s
        await asyncio.sleep(0.05)
    raise AssertionError(f"engine not idle: {engine.stats()}")


def test_concurrent_streams_equal_generate(llm):
    p = SamplingParams(max_tokens=12, temperature=0.8, seed=3)
    want = [o.text for o in llm.generate(PROMPTS, p)]

    async def main():
        with AsyncEngine(llm) as engine:
            got = await asyncio.gather(*(text_of(engine, x, p) for x in PROMPTS))
            ids = await text_of(engine, llm.tokenize(PROMPTS[0]), p)  # token ids as the prompt
            return got, ids
    got, ids = asyncio.run(main())
    assert got == want and ids == want[0]


def test_closing_or_cancelling_frees_blocks(llm):
    long = SamplingParams(max_tokens=400, ignore_eos=True)

    async def main():
        with AsyncEngine(llm) as engine:
            gen = engine.generate("Tell a long story:", long)
            for _ in range(3):
                await gen.__anext__()
            assert engine.stats()["blocks_used"] > 0
            await gen.aclose()
            await idle(engine)

            async def reader():
                async for _ in engine.generate("Another long story:", long):
                    pass
            task = asyncio.create_task(reader())
            while engine.stats()["generated_tokens"] < 5:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            s = await idle(engine)
            assert s["cancelled"] >= 2
            # The engine goes on: a new request runs to its end.
            assert await text_of(engine, "The world is", SamplingParams(max_tokens=4))
    asyncio.run(main())


def test_bad_requests_raise_and_disturb_nothing(llm):
    async def main():
        with AsyncEngine(llm) as engine:
            good = asyncio.create_task(text_of(engine, "The world is", SamplingParams(max_tokens=16)))
            for prompt, params, err in (("x", SamplingParams(n=2), ValueError), ("", None, ValueError),
                                        ([10 ** 9], None, ValueError), (3.5, None, TypeError),
                                        ("x", SamplingParams(temperature=-1), ValueError),
                                        ("x " * 600, None, InvalidArgumentError)):  # past the context
                with pytest.raises(err):
                    await text_of(engine, prompt, params)
            return await good
    assert asyncio.run(main()) == llm.generate("The world is", SamplingParams(max_tokens=16))[0].text
