"""Elastic SDN controller application for Ryu."""
