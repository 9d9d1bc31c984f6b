"""Distributed group chat: writer, editor and a console UI agent in separate processes."""
