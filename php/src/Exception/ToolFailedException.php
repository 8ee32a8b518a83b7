<?php

declare(strict_types=1);

namespace NppSecure\CacheClient\Exception;

/**
 * A tool (safexec, cache-preload, cache-purge) or the purge service refused or failed. The message is
 * the tool's own one-line message; the exit code is the tool's (or -1 for the service).
 */
final class ToolFailedException extends \RuntimeException implements CacheClientException
{
    /** @var string */
    private $tool;
    /** @var int */
    private $exitCode;
    /** @var string */
    private $toolMessage;

    public function __construct(string $tool, int $exitCode, string $toolMessage)
    {
        $this->tool = $tool;
        $this->exitCode = $exitCode;
        $this->toolMessage = $toolMessage;
        $text = $toolMessage !== '' ? $toolMessage : 'no message';
        parent::__construct(sprintf('%s failed (exit %d): %s', $tool, $exitCode, $text), $exitCode);
    }

    /** The tool that failed: "safexec", "cache-preload", "cache-purge" or "purged". */
    public function getTool(): string
    {
        return $this->tool;
    }

    /** The tool's exit status (-1 when the purge service answered with an error). */
    public function getExitCode(): int
    {
        return $this->exitCode;
    }

    /** The tool's own message (its first non-empty stderr line, or the service's error text). */
    public function getToolMessage(): string
    {
        return $this->toolMessage;
    }
}
