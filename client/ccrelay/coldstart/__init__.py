"""What ccrelay does so that a user does not wait for a cold self-hosted worker."""
