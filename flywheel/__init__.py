"""data-flywheel: find a smaller, cheaper model that does your LLM application's job.

Durable flywheel runs on Temporal: logged LLM calls → curated datasets → candidate models
evaluated as is, with few-shot examples and after LoRA fine-tuning → a recorded comparison.
"""

__version__ = "0.1.0"
