namespace MiniGemini;
