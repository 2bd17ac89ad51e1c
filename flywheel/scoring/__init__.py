"""Pure scoring: tool-call metrics, text similarity and statistics over evaluation replies."""
