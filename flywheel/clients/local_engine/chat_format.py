"""Turn OpenAI-style chat requests into the text a local model sees, for inference and training.

Generation and LoRA training must render conversations the same way, or a fine-tuned adapter
learns a format it is never prompted with. Both go through :class:`ChatRenderer`, which uses the
tokenizer's own chat template and fills the gaps of templates that know nothing of tools
(SmolLM2-135M-Instruct's, for one): it then describes the tools compactly in the system prompt
and writes tool calls as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` text, the
Hermes/Qwen convention that the tool-call parser understands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flywheel.errors import ConfigError, InvalidDataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Message = dict[str, Any]
Tool = dict[str, Any]

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"

_PROBE_TOOL_NAME = "flywheel_probe_tool_7f3a"
_PROBE_TOOL: Tool = {
    "type": "function",
    "function": {
        "name": _PROBE_TOOL_NAME,
        "description": "probe",
        "parameters": {"type": "object", "properties": {"x": {"type": "string"}}},
    },
}


def tool_call_text(name: str, arguments: Mapping[str, Any]) -> str:
    """One tool call in the text format used when the template has no tool-call support."""
    payload = json.dumps({"name": name, "arguments": dict(arguments)}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}{payload}{TOOL_CALL_CLOSE}"


def describe_tools(tools: Sequence[Tool]) -> str:
    """Compact tool descriptions for a system prompt: one signature line per tool.

    ``get_weather(city: string, unit?: "c"|"f") - Current weather`` costs a fraction of the
    tokens of the JSON schema, and on CPU prompt length dominates generation and training time.
    """
    lines = ["You can call these tools:"]
    for tool in tools:
        fn = tool.get("function", tool)
        params = fn.get("parameters") or {}
        required = set(params.get("required") or [])
        args = []
        for pname, pschema in (params.get("properties") or {}).items():
            optional = "" if pname in required else "?"
            args.append(f"{pname}{optional}: {_schema_type(pschema)}")
        line = f"- {fn.get('name', '?')}({', '.join(args)})"
        if fn.get("description"):
            line += f" - {' '.join(str(fn['description']).split())}"
        lines.append(line)
    lines.append(
        f'To call a tool, reply with {TOOL_CALL_OPEN}{{"name": "<tool>", "arguments": '
        f"{{...}}}}{TOOL_CALL_CLOSE}, one block per call."
    )
    return "\n".join(lines)


def _schema_type(schema: Any) -> str:
    if not isinstance(schema, Mapping):
        return "any"
    if "enum" in schema:
        return "|".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = "|".join(str(k) for k in kind)
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        return f"{_schema_type(schema['items'])}[]"
    return str(kind)


def _content_text(content: Any) -> str:
    """Message content as a string: None becomes "", OpenAI content parts are joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") if isinstance(part, Mapping) else str(part) for part in content
        )
    return str(content)


def _normalize_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call with ``arguments`` as an object (templates expect dicts)."""
    fn = call.get("function", call)
    arguments: Any = fn.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            arguments = {"_raw": arguments}
    out: dict[str, Any] = {
        "type": "function",
        "function": {"name": fn.get("name", ""), "arguments": arguments},
    }
    if call.get("id"):
        out["id"] = call["id"]
    return out


class ChatRenderer:
    """Renders conversations with a tokenizer's chat template, filling in tool support.

    Support is detected once, by rendering a probe with and without a tool (and a probe tool
    call): a template whose output does not change ignores that feature.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        self.has_template = bool(getattr(tokenizer, "chat_template", None))
        self.tools_in_template = self.has_template and self._probe_tools()
        self.tool_calls_in_template = self.has_template and self._probe_tool_calls()

    def _apply(
        self, messages: list[Message], tools: Sequence[Tool] | None, *, generation_prompt: bool
    ) -> str:
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": generation_prompt}
        if tools:
            kwargs["tools"] = list(tools)
        text = self.tokenizer.apply_chat_template(messages, **kwargs)
        if not isinstance(text, str):  # pragma: no cover - defensive against API changes
            raise TypeError(f"apply_chat_template returned {type(text).__name__}, not str")
        return text

    def _probe_tools(self) -> bool:
        messages: list[Message] = [{"role": "user", "content": "hi"}]
        try:
            with_tools = self._apply(messages, [_PROBE_TOOL], generation_prompt=True)
            without = self._apply(messages, None, generation_prompt=True)
        except Exception:
            return False
        return with_tools != without and _PROBE_TOOL_NAME in with_tools

    def _probe_tool_calls(self) -> bool:
        call = {"type": "function", "function": {"name": _PROBE_TOOL_NAME, "arguments": {}}}
        messages: list[Message] = [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
        ]
        tools = [_PROBE_TOOL] if self.tools_in_template else None
        try:
            text = self._apply(messages, tools, generation_prompt=False)
        except Exception:
            return False
        return _PROBE_TOOL_NAME in text

    def prepare(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Tool] | None
    ) -> tuple[list[Message], list[Tool] | None]:
        """Messages and tools as the template should receive them.

        Contents become strings, tool-call arguments objects; tools and tool calls the template
        would drop are written into the system prompt and the assistant text instead.
        """
        out: list[Message] = []
        for message in messages:
            msg = dict(message)
            msg["content"] = _content_text(msg.get("content"))
            calls = msg.pop("tool_calls", None) or []
            if calls:
                normalized = [_normalize_call(c) for c in calls]
                if self.tool_calls_in_template:
                    msg["tool_calls"] = normalized
                else:
                    text = "".join(
                        tool_call_text(c["function"]["name"], c["function"]["arguments"])
                        for c in normalized
                    )
                    msg["content"] = msg["content"] + text
            out.append(msg)
        tool_list = list(tools) if tools else None
        if tool_list and not self.tools_in_template:
            description = describe_tools(tool_list)
            if out and out[0].get("role") == "system":
                out[0]["content"] = f"{out[0]['content']}\n\n{description}".lstrip()
            else:
                out.insert(0, {"role": "system", "content": description})
            tool_list = None
        return out, tool_list

    def _require_template(self) -> None:
        if not self.has_template:
            name = getattr(self.tokenizer, "name_or_path", "the model")
            raise ConfigError(
                f"{name} has no chat template, so chat requests cannot be rendered for it: "
                "use an instruction-tuned (chat) model, or set tokenizer.chat_template in its "
                "tokenizer_config.json"
            )

    def render_prompt(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Tool] | None = None
    ) -> str:
        """The prompt text for a chat request, ending where the assistant's reply begins."""
        self._require_template()
        if not messages:
            raise InvalidDataError("a chat request needs at least one message")
        prepared, tool_list = self.prepare(messages, tools)
        return self._apply(prepared, tool_list, generation_prompt=True)

    def render_example(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Tool] | None = None
    ) -> tuple[str, str]:
        """(prompt, target) for a training conversation whose last message is the answer.

        The target is what the template writes after the generation prompt, end-of-turn token
        included, so the model learns to stop where generation expects it to.
        """
        self._require_template()
        if not messages or messages[-1].get("role") != "assistant":
            raise InvalidDataError(
                "a training conversation must end with the assistant message to learn"
            )
        prepared, tool_list = self.prepare(messages, tools)
        prompt = self._apply(prepared[:-1], tool_list, generation_prompt=True)
        full = self._apply(prepared, tool_list, generation_prompt=False)
        if full.startswith(prompt) and len(full) > len(prompt):
            return prompt, full[len(prompt) :]
        # Templates that rewrite earlier turns (e.g. strip reasoning) do not extend the prompt:
        # fall back to the answer text followed by the end-of-sequence token.
        eos = getattr(self.tokenizer, "eos_token", None) or ""
        return prompt, prepared[-1]["content"] + eos
