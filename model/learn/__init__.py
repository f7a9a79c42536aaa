"""The Learn page's content: the lesson's mistakes done for real, the practice, exercises and quiz."""
