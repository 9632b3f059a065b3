"""Block Kit views the bot renders: messages, modals and the App Home."""
