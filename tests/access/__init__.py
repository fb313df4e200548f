"""Tests of the access app: identities, authentication, consent."""
