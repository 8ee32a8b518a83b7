<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

/**
 * What a finished command returned.
 */
final class CommandResult
{
    /** @var int */
    public $exitCode;
    /** @var string */
    public $stdout;
    /** @var string */
    public $stderr;

    public function __construct(int $exitCode, string $stdout, string $stderr)
    {
        $this->exitCode = $exitCode;
        $this->stdout = $stdout;
        $this->stderr = $stderr;
    }

    /**
     * The tool's one-line message: the first non-empty stderr line that is not an `Info:`, `Summary:` or
     * `Warning:` note, else the first non-empty line of stderr, else of stdout.
     */
    public function message(): string
    {
        foreach (preg_split('/\r?\n/', $this->stderr) ?: [] as $line) {
            $line = trim($line);
            if ($line !== '' && preg_match('/^(Info|Warning|Notice|Summary):/i', $line) !== 1) {
                return $line;
            }
        }
        foreach ([$this->stderr, $this->stdout] as $text) {
            foreach (preg_split('/\r?\n/', $text) ?: [] as $line) {
                $line = trim($line);
                if ($line !== '') {
                    return $line;
                }
            }
        }
        return '';
    }
}
