"""The web layer: Telegram Mini App pages for partners' private answers (aiohttp).

``initdata`` checks Telegram's signed launch data, ``pages`` renders the HTML, ``server``
serves it with strict security headers. Pages call the same services as the chat.
"""
