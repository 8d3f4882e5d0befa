namespace MiniGemini.Cli;

/// <summary>The command line asks for something impossible (a bad value, a missing file the user named); exit code 2.</summary>
sealed class UsageException(string message) : Exception(message);
