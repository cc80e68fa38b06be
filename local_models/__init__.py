"""Pure model code: recommender, forecaster, text embeddings. Knows nothing of the agent or the shop."""
