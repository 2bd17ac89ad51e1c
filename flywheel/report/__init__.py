"""What a run's results say, for people: short summaries and notifications
(:mod:`.summary`), and the self-contained HTML report (:mod:`.html`, charts in :mod:`.charts`)."""
