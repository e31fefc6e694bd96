"""Fraud detection: point-in-time features from Delta silver, a RandomForest, MLflow tracking, gated deploys."""
