"""OpenAI API shapes the hub speaks besides chat completions, as pure translations."""
