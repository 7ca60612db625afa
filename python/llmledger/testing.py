"""A fake chat model that reports usage the way real provider clients do, for tests and demos.

LangChain's own fakes report no usage at all, so a cost tracker has nothing to count. This
one returns `AIMessage.usage_metadata` (and, streamed, a final chunk with it), the model name
in `response_metadata`, and `ls_provider` / `ls_model_name` metadata, like ChatOpenAI does.

Example:
    >>> from llmledger.testing import UsageFakeChatModel
    >>> llm = UsageFakeChatModel(model="gpt-4o-mini", responses=["Hello there!"])
    >>> llm.invoke("Hi").usage_metadata["output_tokens"]
    2
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

__all__ = ["UsageFakeChatModel"]


def _words(text: Any) -> int:
    return len(str(text).split())


class UsageFakeChatModel(BaseChatModel):
    """Answers with `responses` in turn and reports token usage.

    Usage is `usage` if given (a LangChain `UsageMetadata` dict), else counted as whitespace
    words: each input message's words plus 3, and the answer's words.
    """

    model: str = "gpt-4o-mini"
    """The model name reported in `response_metadata["model_name"]`."""
    provider: str = "openai"
    """Reported as `ls_provider`."""
    responses: list[str] = Field(default_factory=lambda: ["ok"])
    """Answers, used in turn."""
    usage: dict[str, Any] | None = None
    """Fixed usage to report instead of word counts."""
    stream_usage: bool = True
    """Whether a streamed answer ends with a usage chunk."""
    index: int = 0

    @property
    def _llm_type(self) -> str:
        return "llmledger-usage-fake-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(
            ls_provider=self.provider, ls_model_name=self.model, ls_model_type="chat"
        )

    def _next(self) -> str:
        text = self.responses[self.index % len(self.responses)]
        self.index += 1
        return text

    def _usage(self, messages: list[BaseMessage], text: str) -> UsageMetadata:
        if self.usage is not None:
            return UsageMetadata(**self.usage)  # type: ignore[typeddict-item,no-any-return]
        inp = sum(_words(m.content) + 3 for m in messages)
        out = _words(text)
        return UsageMetadata(input_tokens=inp, output_tokens=out, total_tokens=inp + out)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self._next()
        message = AIMessage(
            content=text,
            usage_metadata=self._usage(messages, text),
            response_metadata={"model_name": self.model, "model_provider": self.provider},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self._next()
        for i, word in enumerate(text.split(" ")):
            piece = word if i == 0 else " " + word
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        last = AIMessageChunk(
            content="",
            response_metadata={"model_name": self.model, "model_provider": self.provider},
            usage_metadata=self._usage(messages, text) if self.stream_usage else None,
        )
        yield ChatGenerationChunk(message=last)
